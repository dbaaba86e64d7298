"""The edge node: runs the TFLite mobile stage on a device and publishes activations.

Imports numpy, pillow, paho-mqtt and a TFLite interpreter only; never TensorFlow,
never splitleak.cloud or splitleak.attack.
"""
