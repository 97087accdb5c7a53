"""The experiment above both method packages: does GAN-synthesised data help the recognizer?"""
