"""Neural building blocks: MLPs, encodings, initialisations, fields."""

from AnatomyINRLib.nn.field import NeuralField, Normalization
from AnatomyINRLib.nn.mlp import MLP, MLPConfig
from AnatomyINRLib.nn.registry import build_network, register_network

__all__ = ["MLP", "MLPConfig", "NeuralField", "Normalization", "build_network", "register_network"]
