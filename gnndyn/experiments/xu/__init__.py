"""Experiments of Xu, Zhang, Jegelka & Kawaguchi, *Optimization of GNNs: implicit acceleration by skip
connections and more depth* (ICML 2021), with the blog post restating its proof (papers 002, 004).

``xu-fig1`` … ``xu-fig5`` reproduce Figures 1–5; ``flow-vs-descent`` measures how far gradient descent
strays from the gradient flow the theorems are about. Importing this package registers them.
"""

from gnndyn.experiments.xu import fig5, fig23, flow_vs_descent, speed  # noqa: F401
