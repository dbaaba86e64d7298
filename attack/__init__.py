"""The attacker: decoders that invert the mobile stage, evaluation and the live eavesdropper."""
