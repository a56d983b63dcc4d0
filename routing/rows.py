"""The prepared cursor and row helpers of the router's hand-written SQL: `customers.rows`, where
they moved so the caller card's own statements (customers) can use them; routing imports them
from here as before."""

from customers.rows import PREPARE_AFTER, columns, instance, prepared_cursor, split, width

__all__ = ["PREPARE_AFTER", "columns", "instance", "prepared_cursor", "split", "width"]
