"""Fakes of outside services, for tests: real servers on the loopback interface."""
