"""A small CNN on scikit-learn's 8x8 handwritten digits, float and QDQ-quantized."""
