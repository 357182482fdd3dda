"""The avatar: a portrait or video prepared once, offline (detector, landmarker, mesh, track,
masks, cache, prepare, atlas_build: the mouth atlas from a talking reference), loaded at run
time (loader, runtime, source), and its face animated (face/: the animators behind one
Protocol). The bundled portrait is avatar.png."""
