"""Service orders: the state machine and its one writer (:mod:`orders.state`), triage of
predictive proposals (:mod:`orders.triage`), false-alarm feedback and precision
(:mod:`orders.feedback`), SLA clocks and breach probability (:mod:`orders.sla`), the
service figures (:mod:`orders.figures`) and the events other systems receive
(:mod:`orders.events`)."""
