"""Experiments of Patel, Savostianov & Schaub (arXiv 2501.14440) on §4–§5 and the questions the paper leaves open:
``patel-energy`` (balancedness, Thm 4.2's energy, Thm 4.4 and (4.4)'s feasibility), ``patel-descent`` (Thm 5.1,
the step-size sweep, Remark 5.2, the normalized flow beside gradient descent) and ``patel-open`` (a bottleneck,
the normalized flow's rate and floor). Importing this package registers them.
"""

from gnndyn.experiments.patel_theory import descent, energy, open  # noqa: F401
