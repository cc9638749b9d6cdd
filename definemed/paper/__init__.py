"""The paper's tables, figures and claims from the result files, and the reproduction report against
its reported numbers.
"""
