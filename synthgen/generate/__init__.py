"""Generate stage: render scene specs to images with a registered backend."""
