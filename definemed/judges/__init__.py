"""LLM-as-judge evaluation (paper 5.2, 5.3): the responses judged, the judges' prompts, clients, costs,
records and statistics.
"""
