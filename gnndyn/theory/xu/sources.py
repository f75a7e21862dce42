"""The citations every verdict of Xu et al.'s theory carries: the paper (Xu, Zhang, Jegelka & Kawaguchi,
ICML 2021, paper 002) and the 2025 blog post that restates its proof and corrects one step (paper 004)."""

PAPER = "Xu et al. 2021"
BLOG = "Linear-GNN proof restated (blog, 2025)"

__all__ = ["BLOG", "PAPER"]
