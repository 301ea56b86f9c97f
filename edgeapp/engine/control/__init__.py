"""Elasticity: SLOs, stream parameter levels, the controllers (AIF, heuristic, static), the
operator's override, and a simulator to evaluate them.

The Engine drives :class:`~edgeapp.engine.control.elasticity.ElasticityController`; the AIF
agent (:mod:`.aif`, JAX) is imported only when that controller is chosen.
"""
