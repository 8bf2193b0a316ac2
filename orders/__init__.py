"""Service orders: the state machine and its one writer (:mod:`orders.state`), triage of
predictive proposals (:mod:`orders.triage`), false-alarm feedback and precision
(:mod:`orders.feedback`), SLA clocks and breach probability (:mod:`orders.sla`) and the
service figures (:mod:`orders.figures`)."""
