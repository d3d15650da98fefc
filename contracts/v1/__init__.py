"""contracts/v1"""
