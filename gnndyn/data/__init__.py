"""Graphs, generators and loaders (the first stage of the data flow)."""

from gnndyn.data.climate import load_us_climate
from gnndyn.data.generators import barabasi_albert, csbm, erdos_renyi, knn_ring, random_regular, sbm
from gnndyn.data.graph import Graph, canonical_edge_index
from gnndyn.data.planetoid import load_planetoid
from gnndyn.data.registry import DATASETS, load_graph

__all__ = [
    "Graph", "canonical_edge_index", "csbm", "sbm", "erdos_renyi", "random_regular",
    "knn_ring", "barabasi_albert", "load_planetoid", "load_us_climate", "load_graph", "DATASETS",
]
