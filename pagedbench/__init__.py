"""pagedbench: regression benchmarks for PagedAttention LLM serving.

The measuring code of the suite, along one path:
workload -> engine -> meter -> metrics -> baseline compare -> report.
"""

__version__ = "0.1.0"
