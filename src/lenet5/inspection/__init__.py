"""Look inside a trained model: the ``lenet5 inspect`` report.

``report`` assembles the page, ``metrics`` computes its numbers, ``probes`` reads the model's
insides with forward hooks, ``figures`` draws, and ``html`` lays it all out offline.
"""
