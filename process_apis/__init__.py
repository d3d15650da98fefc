"""process_apis"""
