"""scadeploy: strip SCA-pruned spiking networks into smaller dense ones and deploy them."""

__version__ = "0.1.0"
