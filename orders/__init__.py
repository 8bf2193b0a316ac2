"""Service orders: their state (``orders.state``) and the events other systems receive
(``orders.events``)."""
