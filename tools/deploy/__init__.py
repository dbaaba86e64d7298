"""The demonstration deployment: broker, cloud head, edge node and eavesdropper as child
processes, and its report."""
