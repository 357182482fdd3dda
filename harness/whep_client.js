// A WHEP viewer for the tests and the bench: the exchange with recvonly transceivers, the
// stream on a <video>, and the sound's RMS every 20 ms (WebAudio) with the wall time.
window.whepStart = async (url, token) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  const stream = new MediaStream();
  pc.ontrack = (e) => stream.addTrack(e.track);
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange',
                        () => pc.iceGatheringState === 'complete' && done());
  });
  const headers = {'Content-Type': 'application/sdp'};
  if (token) headers.Authorization = 'Bearer ' + token;
  const r = await fetch(url, {method: 'POST', headers, body: pc.localDescription.sdp});
  const text = await r.text();
  if (r.status !== 201) { pc.close(); return {status: r.status, text}; }
  await pc.setRemoteDescription({type: 'answer', sdp: text});
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.srcObject = stream;
  document.body.appendChild(video);
  // Chromium feeds a remote track to WebAudio only while a media element plays it too.
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const levels = [];
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    levels.push([Date.now() / 1000, Math.sqrt(sum / buf.length)]);
  }, 20);
  const location = r.headers.get('Location');
  window.whep = {pc, video, location, levels, ctx, timer, token};
  return {status: r.status, location, answer: text};
};

window.whepStats = async () => {
  const w = window.whep;
  const out = {state: w.pc.connectionState, width: w.video.videoWidth,
               height: w.video.videoHeight, audio: {}, video: {}};
  const codecs = {};
  const stats = await w.pc.getStats();
  stats.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      out[s.kind] = {packets: s.packetsReceived, framesDecoded: s.framesDecoded,
                     totalAudioEnergy: s.totalAudioEnergy, codecId: s.codecId,
                     codec: codecs[s.codecId] || null};
    }
  });
  return out;
};

window.whepLevels = (since) => window.whep.levels.filter((x) => x[0] >= since);

window.whepStop = async () => {
  const w = window.whep;
  const headers = w.token ? {Authorization: 'Bearer ' + w.token} : {};
  const r = await fetch(w.location, {method: 'DELETE', headers});
  clearInterval(w.timer);
  w.pc.close();
  await w.ctx.close();
  return r.status;
};
