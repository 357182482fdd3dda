"""The stream itself: the clock and the pacer that own time, the program that decides what each
tick shows, the idle cycle, speech segments, frames and audio, the state machine, and the
encoder that hands everything to FFmpeg."""
