"""The edge node: runs the TFLite mobile stage on a device and publishes activations.

Imports numpy, pillow, paho-mqtt and a TFLite interpreter (TensorFlow only as the last resort,
where no TFLite runtime is installed), picamera2 or OpenCV for a camera; never splitleak.cloud
or splitleak.attack.
"""
