"""A message's way to air and back: scheduler.py (the backlog, the render worker, outcomes
into acks), rendering.py (one message into its segment: speech, face, a bounded buffer),
lifecycle.py (a message's life as events), captions/ (words on the timeline, burned in,
recorded)."""
