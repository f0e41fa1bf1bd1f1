"""Overdue Advisor: a conversation that helps people with an overdue repayment."""

__version__ = "0.1.0"
