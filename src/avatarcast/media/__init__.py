"""The media types every room shares: frames.py (yuv420p frames), audio.py (PCM, resampling,
per-frame slices), idle.py (the idle picture as a ping-pong cycle), cues.py (what speech asks
of the face besides its mouth)."""
