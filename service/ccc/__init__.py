"""CCC call records: the app registry, the Data Push receiver and the DescribeTelCdr pull."""
