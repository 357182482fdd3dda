"""The HTTP port: port.py (/healthz and the server), metrics.py (/metrics), parts.py (a
channel's parts as route tables), console/ (the web console) and webrtc/ (the WHEP view)."""
