def main(argv=None):
    print("synthgap")
