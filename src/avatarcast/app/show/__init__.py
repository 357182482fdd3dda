"""The run of show (issue 29): `avatarcast show FILE` keeps a channel talking without an
operator: scheduled items (cron times, intervals) and an idle rotation that fills silences
without repeating itself (schedule.py: the file; cron.py: when; content.py: what is said and
what was said lately; runner.py: the publisher)."""
