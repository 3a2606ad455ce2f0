"""Small test models for twin experiments (pure numpy): :mod:`fdassim.models.lorenz96`."""
