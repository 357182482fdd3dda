"""MuseTalk v1.5: whisper-tiny audio features, a one-step latent UNet, and the SD VAE."""
