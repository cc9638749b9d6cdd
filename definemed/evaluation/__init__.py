"""Knowledge benchmarks (paper 5.1): lm-eval runs, MedQA-de, and effects between models with their
noise.
"""
