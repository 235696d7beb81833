"""The pieces of tools/bench.py, which runs them: the systems compared
(``systems``), micrograd's nn code for any Value class (``reference_nn``), one
variant's measurements (``runs``), the four parts (``moons``, ``mnist``, ``w1`` for
workload W1 in C, ``python_ops`` for one node per operation from Python), callgrind's
instruction counts (``callgrind``) and the tables and goals printed at the end
(``report``)."""
