"""EMOTE networks in torch: talking head, FLINT motion prior, audio encoders, ALiBi attention."""
