"""The pieces of tools/bench.py, which runs them: the systems compared
(``systems``), micrograd's nn code for any Value class (``reference_nn``), one
variant's measurements (``runs``), the three parts (``moons``, ``mnist``,
``c_nodes``) and the tables and goals printed at the end (``report``)."""
