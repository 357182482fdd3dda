"""Words on screen and on file: word timings from the speech, each segment's caption track
(drawn by the scene's captions layer), and a record (JSON lines and WebVTT) of what aired, on
the stream's clock."""
