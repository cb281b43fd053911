"""Tools from Model Context Protocol servers: the config file, one session per server, and their tools."""
