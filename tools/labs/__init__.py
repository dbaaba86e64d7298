"""Security-class labs: handouts, per-student variants, set-up checks and the checks that grade them."""
