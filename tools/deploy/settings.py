"""The demonstration's defaults, defined once (the CLI reads them without loading the deployment)."""

# The demo's decoder stops here at the latest, so that `make demo` stays within about 5 minutes
# on 2 cores; early stopping alone keeps an epoch close to this one (docs/deployment.md, The demo).
DEMO_ATTACK_EPOCHS = 25
DEMO_WEB = "127.0.0.1:8088"  # the eavesdropper's live page
DEMO_RATE = 50.0  # edge frames per second: slow enough to watch the page redraw
DEMO_OUT = "runs/demo"  # the report folder
