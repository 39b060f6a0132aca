"""Perceptual Losses for Real-Time Style Transfer and Super-Resolution (Johnson et al., 2016):
loss network, losses, networks, Gatys optimisation, metrics and weight loading."""

__version__ = "0.1.0"
