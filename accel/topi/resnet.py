"""Layer shapes of well-known networks, for tests and benchmarks."""

# ResNet-18's convolutions: (height = width, in channels, out channels, kernel, stride); each is
# padded by kernel // 2.
RESNET18_CONV2D = (
    (56, 64, 64, 3, 1),
    (56, 64, 128, 3, 2),
    (56, 64, 128, 1, 2),
    (28, 128, 128, 3, 1),
    (28, 128, 256, 3, 2),
    (28, 128, 256, 1, 2),
    (14, 256, 256, 3, 1),
    (14, 256, 512, 3, 2),
    (14, 256, 512, 1, 2),
    (7, 512, 512, 3, 1),
)
