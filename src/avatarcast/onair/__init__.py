"""The stream itself: the clock and the pacer that own time, the program that decides what each
tick shows, speech segments, the state machine, and the encoder that hands everything to
FFmpeg (one relay per output; each FFmpeg process kept running by an FfmpegChild). Its media
types (frames, audio, the idle cycle) are in media/."""
