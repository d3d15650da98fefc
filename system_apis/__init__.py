"""system_apis"""
