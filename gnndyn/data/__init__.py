"""Graphs, generators and loaders (the first stage of the data flow)."""

from gnndyn.data.generators import csbm, erdos_renyi, random_regular, sbm
from gnndyn.data.graph import Graph, canonical_edge_index
from gnndyn.data.planetoid import load_planetoid
from gnndyn.data.registry import DATASETS, load_graph

__all__ = [
    "Graph", "canonical_edge_index", "csbm", "sbm", "erdos_renyi", "random_regular",
    "load_planetoid", "load_graph", "DATASETS",
]
