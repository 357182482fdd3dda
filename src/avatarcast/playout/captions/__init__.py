"""Words on screen and on file: word timings from the speech, burned-in lower-third captions,
and a record (JSON lines and WebVTT) of what aired, on the stream's clock."""
