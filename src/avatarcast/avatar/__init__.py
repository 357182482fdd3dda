"""The avatar: a portrait or video prepared once, offline (detector, landmarker, mesh, track,
masks, cache, prepare, atlas_build: the mouth atlas from a talking reference), loaded at run
time (loader, runtime, source), its face animated (face/: the animators behind one
Protocol) and brought to life on air (alive/: blinks, head and body motion, gaze). The bundled
portrait is avatar.png."""
