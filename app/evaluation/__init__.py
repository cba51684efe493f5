"""Pairwise evaluations: test sets, answers from two models, a judge in both answer orders."""
