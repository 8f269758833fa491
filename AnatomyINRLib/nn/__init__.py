"""Neural building blocks: MLPs, encodings, initialisations, nested K-output networks, occupancy nets, fields."""

from AnatomyINRLib.nn.field import NeuralField, Normalization
from AnatomyINRLib.nn.mlp import MLP, MLPConfig
from AnatomyINRLib.nn.nested import NestedNetworkConfig, NestedSDFNetwork
from AnatomyINRLib.nn.occupancy import OccupancyNetworkConfig, OccupancyResNet
from AnatomyINRLib.nn.registry import build_network, register_network

__all__ = [
    "MLP",
    "MLPConfig",
    "NestedNetworkConfig",
    "NestedSDFNetwork",
    "NeuralField",
    "OccupancyNetworkConfig",
    "OccupancyResNet",
    "Normalization",
    "build_network",
    "register_network",
]
