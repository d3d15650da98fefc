"""experience_apis"""
